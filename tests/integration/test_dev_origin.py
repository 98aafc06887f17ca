"""Development mode answers on the public origin only: another name for the same port is
redirected there (GET, HEAD) or refused with a link there (other methods)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tests.conftest import ServerFactory


def test_another_name_for_the_server_is_sent_to_the_public_origin(
    make_server: ServerFactory,
) -> None:
    server = make_server(host_name="localhost")
    origin = server.settings.public_origin
    port = urlsplit(origin).port
    other = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=other, follow_redirects=False) as client:
        moved = client.get("/signin?lang=ja")
        assert moved.status_code == 307
        assert moved.headers["location"] == f"{origin}/signin?lang=ja"
        assert client.head("/account").headers["location"] == f"{origin}/account"
        spoofed = client.get("/signin", headers={"Host": f"evil.example:{port}"})
        assert spoofed.headers["location"] == f"{origin}/signin"
        api = client.post("/api/v1/signin/email", json={"email": "amy@example.com"})
        assert api.status_code == 421
        assert api.json()["error"] == "wrong_origin"
        assert api.json()["origin"] == origin
        form = client.post(
            "/signin/email", data={"email": "amy@example.com"}, headers={"Accept-Language": "ja"}
        )
        assert form.status_code == 421
        assert f'href="{origin}/signin"' in form.text
        assert 'data-error="wrong_origin"' in form.text
        assert "公開アドレス" in form.text
        assert client.get("/healthz").status_code == 200
    with httpx.Client(base_url=origin, follow_redirects=False) as client:
        assert client.get("/signin").status_code == 200


def test_only_development_redirects(make_server: ServerFactory) -> None:
    development = make_server(public_origin="https://id.example")
    production = make_server(public_origin="https://id.example", mode="production")
    on_the_origin_port = {"Host": "127.0.0.1:443"}
    with httpx.Client(base_url=development.url) as client:
        moved = client.get("/signin", headers=on_the_origin_port)
        assert moved.status_code == 307
        assert moved.headers["location"] == "https://id.example/signin"
        assert client.get("/signin").status_code == 200
    with httpx.Client(base_url=production.url) as client:
        assert client.get("/signin", headers=on_the_origin_port).status_code == 200

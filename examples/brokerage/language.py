"""The example's two languages: English as written in the templates, Japanese from
:data:`JAPANESE`. The browser's ``Accept-Language`` picks one, and the app passes it to
Sekisho as ``ui_locales`` (OIDC Core §3.1.2.1) so the sign-in pages match."""

# ruff: noqa: RUF001 (full-width brackets are Japanese punctuation here)
from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("en", "ja")

JAPANESE = {
    "a Sekisho example relying party": "Sekisho と連携するアプリケーションの例",
    "Your securities account": "証券口座",
    "Sign in to see your balance and history.": "サインインすると、残高と取引履歴を確認できます。",
    "Sign in with Sekisho": "Sekisho でサインイン",
    "The withdrawal is done.": "出金が完了しました。",
    "The withdrawal was refused (amount or balance).": "出金できませんでした（金額または残高をご確認ください）。",
    "You signed in again. Submit the withdrawal once more.": "もう一度サインインしました。出金をもう一度送信してください。",
    "Balance": "残高",
    "How you signed in": "サインインの方法",
    "Account": "アカウント",
    "acr (assurance)": "acr（認証の強度）",
    "amr (methods)": "amr（認証方法）",
    "History": "取引履歴",
    "Date": "日付",
    "What": "内容",
    "Amount": "金額",
    "Dividend, 7203 Toyota Motor": "配当金（7203 トヨタ自動車）",
    "Withdrawal": "出金",
    "Withdraw": "出金",
    "Above ¥{amount}, you confirm with a passkey.": "¥{amount} を超える出金は、パスキーで確認します。",
    "Amount (yen)": "金額（円）",
    "Sign out": "サインアウト",
    "Sign-in stopped": "サインインが中断されました",
    "A passkey is needed": "パスキーが必要です",
    "Large withdrawals need a sign-in with a passkey, and your Sekisho account cannot provide one. Add a passkey on your Sekisho account page, then try again.": (
        "高額の出金には、パスキーでのサインインが必要です。お使いの Sekisho アカウントには"
        "パスキーがありません。Sekisho のアカウントページでパスキーを追加してから、"
        "もう一度お試しください。"
    ),
    "Sekisho did not sign you in.": "Sekisho でサインインできませんでした。",
    "Error code": "エラーコード",
    "Back to your account": "口座に戻る",
}


def language_of(accept_language: str) -> str:
    """The first of ``LANGUAGES`` the header names (weights ignored: browsers list in
    order of preference), English otherwise."""
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return "en"


def colon(language: str) -> str:
    """What follows a label: a full-width colon, nothing after it, in Japanese."""
    return "：" if language == "ja" else ": "


def translator(language: str) -> Callable[[str], str]:
    if language == "ja":
        return lambda text: JAPANESE.get(text, text)
    return lambda text: text

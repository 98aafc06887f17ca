// The form_post response page (OAuth 2.0 Form Post Response Mode §2): sends the
// authorization response to the application at once. The page's CSP allows this
// script and a form target of the application's origin only.
(function () {
  "use strict";
  const form = document.getElementById("form-post");
  if (form) { form.submit(); }
})();

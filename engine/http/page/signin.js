// The sign-in page: trade the token for the HttpOnly cookie, then load the status page.
"use strict";
document.getElementById("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = document.getElementById("token").value;
  const r = await fetch("/api/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (r.ok) {
    location.reload();
  } else {
    const notice = document.getElementById("notice");
    notice.textContent = "That is not the token.";
    notice.hidden = false;
  }
});

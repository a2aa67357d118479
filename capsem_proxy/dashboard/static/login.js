// Trades the admin token for a session cookie once; the page never stores the token.
"use strict";

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  const message = document.getElementById("login-error");
  message.textContent = "";
  let response;
  try {
    response = await fetch("/dashboard/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { authorization: "Bearer " + input.value.trim() },
    });
  } catch (error) {
    message.textContent = "The proxy did not answer.";
    return;
  }
  input.value = "";
  if (response.status === 204) {
    window.location.replace("/dashboard");
  } else {
    message.textContent = response.status === 401 ? "Wrong token." : "Login failed (HTTP " + response.status + ").";
  }
});

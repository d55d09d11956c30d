// The register page: the same rules and messages as the API's; signed in on success.
import { api, onSubmit } from "./api.js";

onSubmit(document.getElementById("register"), async (f) => {
  await api("POST", "/api/web/register", {
    username: f.username, email: f.email, password: f.password,
  });
  location.assign("/dashboard");
});

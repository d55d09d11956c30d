// The login page: the session goes to an HttpOnly cookie, then on to the dashboard.
import { api, onSubmit } from "./api.js";

onSubmit(document.getElementById("login"), async (f) => {
  await api("POST", "/api/web/login", { username: f.username, password: f.password });
  location.assign("/dashboard");
});

// {{name}}: an Express web server.
const express = require("express");

const app = express();
const port = process.env.PORT || 3000;

app.get("/", (req, res) => {
  res.send("Hello from {{name_kebab}}!");
});

app.listen(port, () => {
  console.log(`listening on http://127.0.0.1:${port}`);
});

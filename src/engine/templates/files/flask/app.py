"""{{name}}: a Flask web app."""

from flask import Flask, render_template

app = Flask(__name__)


@app.route("/")
def index():
    return render_template("index.html", name="{{name_kebab}}")


if __name__ == "__main__":
    app.run(debug=True)

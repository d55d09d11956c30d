"""{{name}}: a Python program."""


def greeting(who):
    return f"Hello, {who}!"


def main():
    print(greeting("{{name_kebab}}"))


if __name__ == "__main__":
    main()

from client.cli import main

main("python -m client")

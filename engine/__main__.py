from engine.cli.main import main

main(prog_name="cuecap")

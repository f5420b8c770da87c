from coop100.cli import cli

cli(prog_name="coop100")

from stitcher.cli import main

main(prog_name="stitcher")

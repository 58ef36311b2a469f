"""The `stitcher` command and `python -m stitcher`."""

from stitcher import interrupts


def main() -> None:
    # Signals first: one arriving while the CLI's modules load (a second or so) then stops the
    # command with its one line too, rather than a traceback.
    interrupts.install()
    try:
        from stitcher.cli import main as cli_main

        cli_main(prog_name="stitcher")
    except interrupts.Interrupted as stopped:
        interrupts.exit_stopped(stopped.signum)
    finally:
        # The command is over, its exit code chosen: Python's teardown puts the default
        # handlers back, and a signal then would replace that code with death by the signal.
        interrupts.ignore_until_exit()


if __name__ == "__main__":
    main()

"""`python -m bench` is the same as the `bench` console script (and what torchrun launches)."""

from bench.cli.main import main

if __name__ == "__main__":
    main()

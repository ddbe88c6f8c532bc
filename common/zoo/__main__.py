"""python -m common.zoo: the zoo sweep (see common.zoo.driver)."""
import sys

from common.zoo.driver import main

if __name__ == "__main__":
    sys.exit(main())

from uboost.cli import main

main()

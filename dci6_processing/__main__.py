from dci6_processing.cli import main

main()

from siptool.cli import main

main()

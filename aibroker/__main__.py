from aibroker.cli import main

main()

from sekisho.cli import main

main()

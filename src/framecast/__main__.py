from framecast.cli import main

main()

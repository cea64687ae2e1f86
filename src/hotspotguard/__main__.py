from hotspotguard.cli import main

raise SystemExit(main())

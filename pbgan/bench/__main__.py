from pbgan.bench.cli import main

raise SystemExit(main())

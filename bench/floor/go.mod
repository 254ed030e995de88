module poolguard.dev/bench/floor

go 1.24

module poolguard.dev/contract/gosql

go 1.21

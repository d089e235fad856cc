"""Exchange Server over EWS (exchangelib): streaming notifications or SyncFolderItems polling,
tags written back as categories."""

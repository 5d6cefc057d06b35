module nemod

go 1.26.0

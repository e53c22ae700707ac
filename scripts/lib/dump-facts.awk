# What a mariadb-dump file says about itself, read in one pass (backup.sh, restore.sh):
#   gzip -dc FILE | awk -f dump-facts.awk   ->   position=<binlog file>:<offset>
#                                                revision=<alembic revision(s), comma-separated>
#                                                complete=yes|no
# POSIX awk only (the MariaDB image has mawk).

# Written by --master-data=2: "-- CHANGE MASTER TO MASTER_LOG_FILE='f', MASTER_LOG_POS=n;"
/^-- CHANGE MASTER TO MASTER_LOG_FILE='/ && position == "" {
    split($0, quoted, "'")
    offset = $0
    sub(/.*MASTER_LOG_POS=/, "", offset)
    sub(/;.*/, "", offset)
    position = quoted[2] ":" offset
}

# Alembic's table: "INSERT INTO `alembic_version` VALUES ('0001');", the values on the same line
# or (newer mariadb-dump) on the lines after it, one row per head.
/^INSERT INTO `alembic_version` VALUES/ { in_versions = 1 }
in_versions {
    rest = $0
    while (match(rest, /'[^']*'/)) {
        revision = revision (revision == "" ? "" : ",") substr(rest, RSTART + 1, RLENGTH - 2)
        rest = substr(rest, RSTART + RLENGTH)
    }
    if ($0 ~ /;$/) in_versions = 0
}

{ last = $0 }

END {
    print "position=" position
    print "revision=" revision
    # mariadb-dump's last line: a dump cut short lacks it.
    print "complete=" (last ~ /^-- Dump completed/ ? "yes" : "no")
}

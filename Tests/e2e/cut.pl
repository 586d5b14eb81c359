# The end-to-end tier's power cut (Tests/e2e/interrupt.sh): run as root INSIDE a root's PID
# namespace, it waits for the moment its arguments name and then SIGKILLs every process of the
# namespace at once (kill(-1): all but itself and the namespace's pid 1, which the test kills
# next with the namespace). Only perl-base's builtins: a fresh root has nothing else.
#
#   cut.pl SECONDS RUN proc COMM_RE ANCESTOR_RE CMDLINE_RE AFTER_MS [PATH]
#       a process whose comm matches COMM_RE (and its command line CMDLINE_RE, unless empty),
#       one of whose ancestors' comm matches ANCESTOR_RE, while PATH (if given) exists, and,
#       a directory, holds a file named by digits (dpkg's journal, /var/lib/dpkg/updates: an
#       entry, not its tmp.i);
#       the cut comes AFTER_MS later
#   cut.pl SECONDS RUN log LOGFILE STEP LINE_RE
#       the JSON log gains a record of run RUN and step STEP matching LINE_RE
#   cut.pl SECONDS RUN sql PORT DB CONDITION
#       the query CONDITION returns a row (polled in the server every 5 ms, by a session
#       application_name e2e-cut as the postgres account); the row is reported
#
# Prints READY and its pid (in the namespace) once it watches, then "CUT <what it saw>" and "PROCS <pid:comm<ppid ...>" (every
# process of the namespace at the cut), or "MISSED" when SECONDS passed without the mark.
use strict;
use warnings;

$| = 1;
my ($secs, $run, $mode, @a) = @ARGV;
my $end = time + $secs;

sub nap { select(undef, undef, undef, $_[0]) }

sub table {
    my %p;
    opendir(my $d, '/proc') or die "no /proc: $!\n";
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open(my $f, '<', "/proc/$pid/stat") or next;
        my $s = <$f>;
        close $f;
        next unless defined $s && $s =~ /^\d+ \((.*)\) \S (\d+)/s;
        $p{$pid} = [$1, $2];
    }
    closedir $d;
    return \%p;
}

sub cmdline {
    open(my $f, '<', "/proc/$_[0]/cmdline") or return '';
    local $/;
    my $c = <$f> // '';
    close $f;
    $c =~ tr/\0/ /;
    $c =~ s/ +$//;
    return $c;
}

sub chain {
    my ($p, $pid) = @_;
    my @c;
    my $n = 0;
    while ($pid > 1 && $p->{$pid} && $n++ < 64) {
        push @c, $p->{$pid}[0];
        $pid = $p->{$pid}[1];
    }
    return @c;
}

sub cut {
    my ($what) = @_;
    my $p = table();
    kill('KILL', -1);
    my $procs = join(' ', map { "$_:$p->{$_}[0]<$p->{$_}[1]" } sort { $a <=> $b } grep { $_ != $$ } keys %$p);
    print "CUT $what\nPROCS $procs\n";
    exit 0;
}

print "READY $$\n";
if ($mode eq 'proc') {
    my ($comm, $anc, $cmd, $after, $dir) = @a;
    while (time < $end) {
        if (defined $dir && $dir ne '') {
            my $there = -e $dir;
            if ($there && -d _) {
                opendir(my $d, $dir) or die "cannot read $dir: $!\n";
                $there = grep { /^\d+$/ } readdir $d;
                closedir $d;
            }
            if (!$there) { nap(0.005); next; }
        }
        my $p = table();
        for my $pid (sort { $a <=> $b } keys %$p) {
            next if $pid == $$ || $p->{$pid}[0] !~ /$comm/;
            my $c = cmdline($pid);
            next if $cmd ne '' && $c !~ /$cmd/;
            my @ch = chain($p, $pid);
            next unless grep { /$anc/ } @ch[1 .. $#ch];
            nap($after / 1000) if $after > 0;
            my $state = -e "/proc/$pid" ? 'still running' : 'ended';
            cut("pid $pid [$c] under " . join(' < ', @ch) . (defined $dir && $dir ne '' ? ", with $dir" . (-d $dir ? ' holding a journal entry' : ' there') : '')
                . ($after > 0 ? "; cut ${after} ms later, $state" : ''));
        }
        nap(0.005);
    }
} elsif ($mode eq 'log') {
    my ($log, $step, $re) = @a;
    my $pos = 0;
    while (time < $end) {
        if (open(my $f, '<', $log)) {
            seek($f, $pos, 0);
            while (my $l = <$f>) {
                last unless $l =~ /\n$/;    # a line being written: read it whole next time
                $pos = tell($f);
                next unless index($l, "\"run\":\"$run\"") >= 0 && index($l, "\"step\":\"$step\"") >= 0;
                next unless $l =~ /$re/;
                chomp $l;
                cut("log record $l");
            }
            close $f;
        }
        nap(0.005);
    }
} elsif ($mode eq 'sql') {
    my ($port, $db, $cond) = @a;
    my $left = $end - time;
    my $sql = "DO \$e2e\$ DECLARE r record; deadline timestamptz := clock_timestamp() + interval '$left seconds'; "
        . "BEGIN LOOP PERFORM pg_stat_clear_snapshot(); "
        . "SELECT * INTO r FROM ($cond) c LIMIT 1; "
        . "IF FOUND THEN RAISE EXCEPTION 'E2E-CUT %', row_to_json(r)::text; END IF; "
        . "EXIT WHEN clock_timestamp() > deadline; PERFORM pg_sleep(0.005); END LOOP; END \$e2e\$";
    $ENV{PGAPPNAME} = 'e2e-cut';
    pipe(my $r, my $w) or die "pipe: $!\n";
    my $pid = fork() // die "fork: $!\n";
    if ($pid == 0) {
        close $r;
        open(STDOUT, '>&', $w) and open(STDERR, '>&', $w) or exit 127;
        exec('setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--',
            'psql', '-X', '-q', '-p', $port, '-d', $db, '-c', $sql) or exit 127;
    }
    close $w;
    my $out = do { local $/; <$r> } // '';
    waitpid($pid, 0);
    cut("row $1") if $out =~ /E2E-CUT (\{.*\})/;
    print "psql: $out" if $out =~ /\S/;
} else {
    die "unknown mode $mode\n";
}
print "MISSED\n";
exit 1;

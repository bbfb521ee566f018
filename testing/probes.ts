/** Shell commands a step runs to show what it can reach (the egress, gVisor and compose tests). */

/**
 * Connects to each host:port given and prints `host:port:open` or `:refused`; first to
 * a listener it opens itself (the positive control: loopback works inside the step).
 * The runner image has perl but no nc or curl, and dash has no /dev/tcp.
 */
export const PROBE = `perl -MIO::Socket::IP -e '
  my $l = IO::Socket::IP->new(Listen => 1, LocalHost => "127.0.0.1", LocalPort => 0) or die "listen: $@";
  my $own = IO::Socket::IP->new(PeerHost => "127.0.0.1", PeerPort => $l->sockport, Timeout => 2);
  print "own:", ($own ? "open" : "refused"), "\\n";
  for my $t (@ARGV) {
    my ($h, $p) = $t =~ /^(.*):(\\d+)$/;
    my $s = IO::Socket::IP->new(PeerHost => $h, PeerPort => $p, Timeout => 2);
    print "$t:", ($s ? "open" : "refused"), "\\n";
  }'`;

/** Asks the proxy (on the step's loopback) for a CONNECT tunnel to each host:port and prints the status it answers. */
export const ASK_PROXY = `perl -MIO::Socket::IP -e '
  for my $t (@ARGV) {
    my $s = IO::Socket::IP->new(PeerHost => "127.0.0.1", PeerPort => 3128, Timeout => 5) or die "proxy: $@";
    print $s "CONNECT $t HTTP/1.1\\r\\nHost: $t\\r\\n\\r\\n";
    my $line = <$s>;
    my ($code) = $line =~ m{^HTTP/1\\.1 (\\d+)};
    print "proxy $t:$code\\n";
  }'`;

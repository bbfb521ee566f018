#!/usr/bin/perl
# One HTTP request on stdin (socat accepts and forks), answered by `git http-backend`:
# the compose test's git server, inside the networks the test creates, since the
# compose deployment's egress service cannot reach the host's loopback.
use strict;
use warnings;
use IPC::Open2;

binmode STDIN;
binmode STDOUT;
my $request = <STDIN> // exit 0;
$request =~ s/\r?\n$//;
my ($method, $target) = split / /, $request;
my %header;
while (my $line = <STDIN>) {
  $line =~ s/\r?\n$//;
  last if $line eq '';
  my ($name, $value) = split /:\s*/, $line, 2;
  $header{lc $name} = $value;
}
my $body = '';
if (defined $header{'content-length'}) {
  read(STDIN, $body, $header{'content-length'});
} elsif (($header{'transfer-encoding'} // '') =~ /chunked/i) {
  while (defined(my $size = <STDIN>)) {
    $size =~ s/\r?\n$//;
    $size = hex $size;
    if ($size == 0) { <STDIN>; last }
    read(STDIN, my $chunk, $size);
    $body .= $chunk;
    <STDIN>;
  }
}
my ($path, $query) = split /\?/, $target, 2;
$path =~ s/^https?:\/\/[^\/]+//;
local %ENV = (
  PATH => '/usr/bin:/bin',
  GIT_PROJECT_ROOT => '/srv/git',
  GIT_HTTP_EXPORT_ALL => '1',
  # The repositories belong to the host's user, not to this one.
  GIT_CONFIG_COUNT => '1', GIT_CONFIG_KEY_0 => 'safe.directory', GIT_CONFIG_VALUE_0 => '*',
  PATH_INFO => $path,
  QUERY_STRING => $query // '',
  REQUEST_METHOD => $method,
  CONTENT_TYPE => $header{'content-type'} // '',
  CONTENT_LENGTH => length $body,
  HTTP_CONTENT_ENCODING => $header{'content-encoding'} // '',
  GIT_PROTOCOL => $header{'git-protocol'} // '',
  REMOTE_ADDR => '127.0.0.1',
);
my $pid = open2(my $out, my $in, 'git', 'http-backend');
binmode $in;
binmode $out;
print $in $body;
close $in;
my $response = do { local $/; <$out> } // '';
waitpid $pid, 0;
my ($head, $rest) = split /\r?\n\r?\n/, $response, 2;
my $status = '200 OK';
my @lines;
for my $line (split /\r?\n/, $head // '') {
  if ($line =~ /^Status:\s*(.*)$/i) { $status = $1 } else { push @lines, $line }
}
print "HTTP/1.1 $status\r\n", map("$_\r\n", @lines), "Connection: close\r\n\r\n", $rest // '';

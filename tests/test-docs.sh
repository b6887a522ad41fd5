#!/bin/sh
# SPDX-License-Identifier: MIT
# The documentation keeps up with the programs: every configuration key
# lbusd knows (lbusd --check-config) is described in lbusd.conf(5) and
# listed in README.md, and every command and alias of lbus (lbus --help),
# and every long option of each command (lbus COMMAND --help), is in lbus(1);
# every long option of lbusd (lbusd --help) is in lbusd(8); every verb of
# the access rules is described in lbusd.conf(5) and README.md, and both man
# pages write out the rule grammar.
# Usage: test-docs.sh LBUS LBUSD SOURCE_ROOT
set -eu
lbus=$1 lbusd=$2 src=$3
fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}

keys=$(XDG_CONFIG_HOME=/nonexistent "$lbusd" --check-config 2>/dev/null | sed -n 's/^\([a-z_]*\) = .*/\1/p')
[ -n "$keys" ] || bad "lbusd --check-config listed no keys"
for k in $keys; do
	grep -q "^\*$k\* = " "$src/doc/lbusd.conf.5.scd" || bad "key $k is not described in doc/lbusd.conf.5.scd"
	grep -q "\`$k\`" "$src/README.md" || bad "key $k is not listed in README.md"
done
echo "keys: $(echo $keys)"

cmds=$("$lbus" --help | awk '/^Commands:/ { c = 1; next } c && /^$/ { c = 0 } c && /^  [a-z]/ { print $1 }')
aliases=$("$lbus" --help | sed -n 's/^Aliases: //p' | tr ',' '\n' | sed 's/ = .*//; s/ //g')
[ -n "$cmds" ] || bad "lbus --help listed no commands"
for c in $cmds; do
	grep -q "^\*$c\*" "$src/doc/lbus.1.scd" || bad "command $c is not described in doc/lbus.1.scd"
	[ "$c" = help ] && continue
	for o in $("$lbus" "$c" --help | grep -oE '^ +(-[A-Za-z], )?--[a-z][-a-z]*' | grep -oE -- '--[a-z][-a-z]*'); do
		grep -q -- "\*$o\*" "$src/doc/lbus.1.scd" || bad "option $o of $c is not in doc/lbus.1.scd"
	done
done
for a in $aliases; do
	grep -q "(alias \*$a\*)" "$src/doc/lbus.1.scd" || bad "alias $a is not in doc/lbus.1.scd"
done
echo "commands: $(echo $cmds); aliases: $(echo $aliases)"

# The verbs of the access rules, as lbusd names them when one is unknown:
# each is described in lbusd.conf(5) and named in the README's section on
# sharing the bus, and the rule grammar is written out in both man pages.
rules=$(mktemp)
trap 'rm -f "$rules"' EXIT
echo 'allow everyone nosuchverb' >"$rules"
verbs=$("$lbusd" --check-config -c "$rules" 2>&1 >/dev/null | sed -n 's/.*unknown verb .*(want \(.*\)).*/\1/p' | sed 's/,//g; s/ or / /')
[ -n "$verbs" ] || bad "lbusd did not list the verbs of the access rules"
for v in $verbs; do
	grep -q "^- \*$v\*: " "$src/doc/lbusd.conf.5.scd" || [ "$v" = all ] ||
		bad "verb $v is not described in doc/lbusd.conf.5.scd"
	sed -n '/^## Share the bus with another user/,/^## /p' "$src/README.md" | grep -q "\`$v\`" ||
		bad "verb $v is not named in README.md's 'Share the bus with another user'"
done
for page in lbusd.conf.5.scd lbusd.8.scd; do
	grep -q '^allow WHO VERBS \[PATTERN\]$' "$src/doc/$page" && grep -q '^deny  WHO VERBS \[PATTERN\]$' "$src/doc/$page" ||
		bad "doc/$page does not write out the rule grammar"
done
echo "verbs: $(echo $verbs)"

for o in $("$lbusd" --help | grep -oE '^ +(-[A-Za-z], )?--[a-z][-a-z]*' | grep -oE -- '--[a-z][-a-z]*'); do
	grep -q -- "\*$o\*" "$src/doc/lbusd.8.scd" || bad "option $o of lbusd is not in doc/lbusd.8.scd"
done
exit $fail

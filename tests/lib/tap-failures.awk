# Prints one line per failed test in a node --test TAP file:
#   name (file:line:col): first line of its error
# Parents failing only because a subtest failed are left out.
/^ *not ok [0-9]+ - / { if (name != "" && !parent) print name loc ": " err
  name = $0; sub(/^ *not ok [0-9]+ - /, "", name); loc = ""; err = ""; parent = 0; want = 0; next }
/^ *ok [0-9]+ - / { if (name != "" && !parent) print name loc ": " err
  name = ""; want = 0; next }
name != "" && /^ *location: / { l = $0; sub(/^ *location: '/, "", l); sub(/'$/, "", l); n = split(l, p, "/"); loc = " (" p[n] ")"; next }
name != "" && /^ *failureType: 'subtestsFailed'/ { parent = 1; next }
name != "" && /^ *error: \|-?$/ { want = 1; next }
name != "" && /^ *error: / { e = $0; sub(/^ *error: /, "", e); err = e; next }
want { e = $0; sub(/^ */, "", e); err = e; want = 0; next }
END { if (name != "" && !parent) print name loc ": " err }

/**
 * The program githa runs on a backend's admin account (docs/operations.md
 * "The admin account"): a constant POSIX sh text, sent whole as
 * `sh -c '<ADMIN_SCRIPT>' githa-admin <op> <arg>...` by admin.ts, with every
 * argument a quoted positional parameter. The same text, after a `#!/bin/sh`
 * line, ships as deploy/backend/githa-admin (test/backends/admin.test.ts
 * checks that they are equal), which githa-gate runs instead of any text sent
 * to it.
 *
 * It holds no single quote and no "!", so that sqQuote leaves it one plain
 * '…' word and githa-gate can tell where it ends.
 */
export const ADMIN_SCRIPT = `# githa-admin: the program githa runs on the admin account of a backend to manage
# its repositories (docs/operations.md "The admin account"). githa sends it
# whole (without the first line) as \`sh -c "<this text>" githa-admin OP ARG...\`;
# githa-gate runs this installed copy instead (git-shell-commands/githa-admin). Every argument is
# data (a positional parameter, never evaluated) and is checked again here.
# Exit: 0 done, 2 usage or a refused argument, 3 absent, 4 exists, else failed.
# Stock tools only: sh, git, mv, mkdir, find, rm, printf.
# refs reads repository names on stdin; every other operation reads nothing.
set -eu

die() { printf "githa-admin: %s\\n" "$1" >&2; exit "\${2:-2}"; }
out() { printf "%s\\n" "$*"; }

# A path below ROOT: not absolute or option-like, no "." or ".." component,
# no "//", no control character.
rel() {
  case $1 in
    "" | /* | -* | */ | *//* | . | .. | ./* | ../* | */. | */.. | */./* | */../*) die "refused path: $1" ;;
    *[[:cntrl:]]*) die "refused path with a control character" ;;
  esac
}
# A repository name as githa sends it: canonical, ending in .git.
name() { rel "$1"; case $1 in *?.git) ;; *) die "refused name: $1" ;; esac; }
absroot() {
  case $1 in /*) ;; *) die "ROOT must be absolute: $1" ;; esac
  case $1 in */../* | */.. | */./* | */. | *//* | *[[:cntrl:]]*) die "refused ROOT: $1" ;; esac
  [ -d "$1" ] || die "ROOT is not a directory: $1" 1
}
trashdir() { case $1 in .. | .*/* | .*[[:cntrl:]]*) die "refused TRASHDIR: $1" ;; .?*) ;; *) die "refused TRASHDIR: $1" ;; esac; }
D="[0-9][0-9]"
STAMP="$D$D$D\${D}T$D$D\${D}Z"
stamp() { case $1 in $STAMP) ;; *) die "refused STAMP: $1" ;; esac; }
# A stamp as a number (20261206074700), to compare.
num() { _n=\${1#*T}; printf "%s%s" "\${1%%T*}" "\${_n%Z}"; }

isrepo() { [ -f "$1/HEAD" ] && [ -d "$1/objects" ] && [ -d "$1/refs" ]; }
# The copy of name $2 (X.git) under directory $1, in the order git finds it
# (enter_repo: X/.git, X, X.git/.git, X.git): sets LAYOUT (that path) and
# MOVE (the path that moves: X for X/.git, X.git for X.git/.git).
copy() {
  b=\${2%.git}
  if isrepo "$1/$b/.git"; then LAYOUT=$b/.git; MOVE=$b
  elif isrepo "$1/$b"; then LAYOUT=$b; MOVE=$b
  elif isrepo "$1/$b.git/.git"; then LAYOUT=$b.git/.git; MOVE=$b.git
  elif isrepo "$1/$b.git"; then LAYOUT=$b.git; MOVE=$b.git
  else return 1; fi
}
# Where the copy found by \`copy\` moves for the name $1, in the same layout: TO.
moved() { case $LAYOUT in *.git/.git) TO=$1 ;; */.git) TO=\${1%.git} ;; *.git) TO=$1 ;; *) TO=\${1%.git} ;; esac; }
# Prints "$2 <layout path>" for every repository below directory $1, without
# descending into a repository or a hidden directory (the trash directory).
walk() {
  top=$1 tag=$2
  set -- "$top"
  while [ $# -gt 0 ]; do
    d=$1; shift
    for e in "$d"/*; do
      [ -d "$e" ] || continue
      p=\${e#"$top"/}
      if isrepo "$e"; then show "$tag" "$p"
      elif isrepo "$e/.git"; then show "$tag" "$p/.git"
      elif [ -L "$e" ]; then :
      else set -- "$@" "$e"; fi
    done
  done
}
# A path with a control character cannot be one line: each such character becomes "?" (an invalid name).
show() {
  case $2 in
    *[[:cntrl:]]*)
      _s=$2 _r=""
      while [ -n "$_s" ]; do _c=\${_s%"\${_s#?}"}; _s=\${_s#?}; case $_c in [[:cntrl:]]) _c="?" ;; esac; _r=$_r$_c; done
      out "$1 $_r" ;;
    *) out "$1 $2" ;;
  esac
}
# Removes the directories above $2 that are empty now, up to directory $1 (kept).
tidy() {
  _d=$2
  while _d=\${_d%/*}; case $_d in "$1"/?*) ;; *) return 0 ;; esac; do find "$_d" -maxdepth 0 -type d -empty -delete 2>/dev/null || return 0; done
}
# Whether a directory on the way from $1 down to $1/$2 is a symbolic link
# (rm -rf would follow it out of the trash directory).
linked() {
  _p=$1 _r=$2
  while [ -n "$_r" ]; do
    _p=$_p/\${_r%%/*}
    case $_r in */*) _r=\${_r#*/} ;; *) _r="" ;; esac
    [ -L "$_p" ] && return 0
  done
  return 1
}
free() { if [ -e "$1" ] || [ -L "$1" ]; then return 1; fi; }
# Whether a config file may make the Git services show other refs than
# for-each-ref does (hideRefs, an include, a namespace): githa lists that
# copy over the Git protocol instead.
hides() {
  while IFS= read -r l || [ -n "$l" ]; do
    case $l in *[Hh][Ii][Dd][Ee][Rr][Ee][Ff][Ss]* | *[Ii][Nn][Cc][Ll][Uu][Dd][Ee]* | *[Nn][Aa][Mm][Ee][Ss][Pp][Aa][Cc][Ee]*) return 0 ;; esac
  done < "$1"
  return 1
}

[ $# -ge 2 ] || die "usage: githa-admin list|refs|create|trash|restore|rename|trashed|purge ROOT ..."
op=$1 root=$2
absroot "$root"
shift 2
case $op in
  list)
    [ $# -eq 1 ] || die "usage: list ROOT TRASHDIR"
    trashdir "$1"
    walk "$root" repo ;;
  refs)
    # Names on stdin, one a line (data, never arguments). Per name, in order:
    # "absent NAME"; "ask NAME" (list it over the Git protocol); or "repo NAME"
    # then "ref OID REFNAME" for every ref (HEAD is not one), and "ask NAME"
    # after them when for-each-ref failed.
    [ $# -eq 0 ] || die "usage: refs ROOT (names on stdin)"
    while IFS= read -r r; do
      name "$r"
      copy "$root" "$r" || { out "absent $r"; continue; }
      g=$root/$LAYOUT
      if [ -f "$g/config" ] && hides "$g/config"; then out "ask $r"; continue; fi
      out "repo $r"
      git --git-dir="$g" for-each-ref "--format=ref %(objectname) %(refname)" < /dev/null || out "ask $r"
    done ;;
  create)
    [ $# -ge 4 ] || die "usage: create ROOT REL BRANCH SHARED DESCRIPTION [KEY VALUE]..."
    name "$1"; rel "$2"
    r=$1 branch=$2 shared=$3 desc=$4
    shift 4
    [ $(($# % 2)) -eq 0 ] || die "usage: KEY VALUE pairs"
    case $shared in "" | false | true | umask | group | all | world | everybody | 0[0-7][0-7][0-7]) ;; *) die "refused SHARED: $shared" ;; esac
    case $desc in *[[:cntrl:]]*) die "refused DESCRIPTION with a control character" ;; esac
    if copy "$root" "$r"; then out exists; exit 4; fi
    free "$root/$r" || { out exists; exit 4; }
    git init --bare --quiet "--initial-branch=$branch" \${shared:+"--shared=$shared"} -- "$root/$r"
    while [ $# -gt 0 ]; do
      case $1 in "" | -* | *[[:cntrl:]]*) die "refused KEY: $1" ;; esac
      git --git-dir="$root/$r" config -- "$1" "$2"
      shift 2
    done
    [ -z "$desc" ] || printf "%s\\n" "$desc" > "$root/$r/description"
    out created ;;
  trash)
    [ $# -eq 3 ] || die "usage: trash ROOT TRASHDIR REL STAMP"
    trashdir "$1"; name "$2"; stamp "$3"
    copy "$root" "$2" || { out absent; exit 3; }
    to=$root/$1/$3/$MOVE
    free "$to" || die "$1/$3/$MOVE is taken" 1
    mkdir -p -- "\${to%/*}"
    mv -- "$root/$MOVE" "$to"
    out trashed ;;
  restore)
    [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: restore ROOT TRASHDIR REL [STAMP]"
    trashdir "$1"; name "$2"; [ $# -eq 2 ] || stamp "$3"
    t=$1 r=$2 want=\${3:-} found=""
    for sd in "$root/$t"/*; do
      s=\${sd##*/}
      case $s in $STAMP) ;; *) continue ;; esac
      [ -z "$want" ] || [ "$s" = "$want" ] || continue
      if copy "$sd" "$r"; then found=$s; move=$MOVE; fi
    done
    [ -n "$found" ] || { out absent; exit 3; }
    if copy "$root" "$r"; then out "exists $found"; exit 4; fi
    free "$root/$move" || { out "exists $found"; exit 4; }
    to=$root/$move
    mkdir -p -- "\${to%/*}"
    mv -- "$root/$t/$found/$move" "$to"
    tidy "$root/$t" "$root/$t/$found/$move"
    out "restored $found" ;;
  rename)
    [ $# -eq 2 ] || die "usage: rename ROOT FROM TO"
    name "$1"; name "$2"
    copy "$root" "$1" || { out absent; exit 3; }
    from=$MOVE
    moved "$2"
    if copy "$root" "$2"; then out exists; exit 4; fi
    free "$root/$TO" || { out exists; exit 4; }
    case $TO/ in "$from"/*) die "cannot move $from into itself" ;; esac
    to=$root/$TO
    mkdir -p -- "\${to%/*}"
    mv -- "$root/$from" "$to"
    out renamed ;;
  trashed)
    [ $# -eq 1 ] || die "usage: trashed ROOT TRASHDIR"
    trashdir "$1"
    for sd in "$root/$1"/*; do
      s=\${sd##*/}
      case $s in $STAMP) [ -d "$sd" ] && walk "$sd" "trash $s" ;; esac
    done ;;
  purge)
    [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: purge ROOT TRASHDIR BEFORE [REL]"
    trashdir "$1"; stamp "$2"; [ $# -eq 2 ] || name "$3"
    t=$1 before=$(num "$2") r=\${3:-}
    for sd in "$root/$t"/*; do
      s=\${sd##*/}
      case $s in $STAMP) ;; *) continue ;; esac
      [ "$(num "$s")" -lt "$before" ] || continue
      if [ -n "$r" ]; then
        copy "$sd" "$r" || continue
        linked "$sd" "$MOVE" && die "refused: a symbolic link in $t/$s/$MOVE" 1
        rm -rf -- "$sd/$MOVE"
        out "purged $s $LAYOUT"
        tidy "$root/$t" "$sd/$MOVE"
      else
        walk "$sd" "purged $s"
        rm -rf -- "$sd"
      fi
    done ;;
  *) die "unknown operation: $op" ;;
esac
exit 0
`;

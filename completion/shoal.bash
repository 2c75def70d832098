# shoal.bash: bash completion for shoal(1), installed as `shoal` in
# bash-completion's completions directory (loaded on first use).
#
# What to offer comes from the program itself, `shoal __complete`
# (docs/completion.md): its commands, each command's flags and positional
# arguments as `shoal help` writes them, and the running daemon's swarms,
# so this file never has to follow the CLI by hand.  Only the values of
# the daemon's choice options are written here.

# The shoal being completed: the word typed when it names a path (a build
# tree's ./shoal), else the one on $PATH.
_shoal_prog()
{
    local p=${1/#\~/$HOME}
    if [[ $p == */* && -x $p ]]; then
        printf '%s\n' "$p"
    else
        printf 'shoal\n'
    fi
}

_shoal()
{
    local cur prev words cword split
    _init_completion -s -n : || return

    local prog
    prog=$(_shoal_prog "${words[0]}")

    # The command word, and a --data-dir written before the cursor (before
    # the command or after it), so swarms come from the daemon it names.
    local i cmd="" cmd_i=0
    local -a datadir=()
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --data-dir)
                ((i + 1 < cword)) && datadir=(--data-dir "${words[i + 1]/#\~/$HOME}")
                ((i++))
                ;;
            --data-dir=*) datadir=(--data-dir "${words[i]#--data-dir=}") ;;
            -*) ;;
            *)
                if [[ -z $cmd ]]; then
                    cmd=${words[i]}
                    cmd_i=$i
                fi
                ;;
        esac
        [[ -n $cmd ]] && break
    done

    if [[ -z $cmd ]]; then
        case $prev in
            --data-dir)
                _filedir -d
                return
                ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '--data-dir --help --version' -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$("$prog" __complete commands 2>/dev/null)" -- "$cur"))
        fi
        return
    fi

    # "--flag" or "--flag ARG", one a line.
    local -A takes=()
    local line flag
    while IFS= read -r line; do
        flag=${line%% *}
        [[ $flag == --* ]] || continue
        if [[ $line == *" "* ]]; then
            takes[$flag]=${line#* }
        else
            takes[$flag]=""
        fi
    done < <("$prog" __complete flags "$cmd" 2>/dev/null)

    # After the command, a --data-dir also counts.
    for ((i = cmd_i + 1; i < cword; i++)); do
        case ${words[i]} in
            --data-dir) ((i + 1 < cword)) && datadir=(--data-dir "${words[i + 1]/#\~/$HOME}") ;;
            --data-dir=*) datadir=(--data-dir "${words[i]#--data-dir=}") ;;
        esac
    done

    # The value of a flag ("--format <Tab>", or "--format=<Tab>": split).
    if [[ $prev == --* && -n ${takes[$prev]+set} && -n ${takes[$prev]} ]]; then
        local arg=${takes[$prev]}
        case $prev in
            --encryption) COMPREPLY=($(compgen -W 'prefer require off' -- "$cur")) ;;
            --cipher) COMPREPLY=($(compgen -W 'auto xchacha20poly1305 xchacha' -- "$cur")) ;;
            --log-level) COMPREPLY=($(compgen -W 'error warn info debug' -- "$cur")) ;;
            --log-format) COMPREPLY=($(compgen -W 'auto text journal' -- "$cur")) ;;
            --crypto-threads) COMPREPLY=($(compgen -W 'auto' -- "$cur")) ;;
            *)
                case $arg in
                    *'|'*) COMPREPLY=($(compgen -W "${arg//|/ }" -- "$cur")) ;;
                    DIR) _filedir -d ;;
                    FILE) _filedir ;;
                    N=PRIORITY)
                        if [[ $cur == *=* ]]; then
                            COMPREPLY=($(compgen -P "${cur%%=*}=" \
                                -W 'skip low normal high' -- "${cur#*=}"))
                        fi
                        ;;
                    *) COMPREPLY=() ;;
                esac
                ;;
        esac
        return
    fi
    $split && return

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${!takes[*]}" -- "$cur"))
        return
    fi

    # Which positional argument the cursor is on: words that are neither
    # flags nor a flag's value, counted from the command.
    local n=0 w
    for ((i = cmd_i + 1; i < cword; i++)); do
        w=${words[i]}
        if [[ $w == --*=* ]]; then
            continue
        elif [[ $w == -* ]]; then
            [[ -n ${takes[$w]} ]] && ((i++))
            continue
        fi
        ((n++))
    done
    local -a args=()
    mapfile -t args < <("$prog" __complete args "$cmd" 2>/dev/null)
    ((${#args[@]})) || return
    local spec
    if ((n < ${#args[@]})); then
        spec=${args[n]}
    elif [[ ${args[-1]} == *... ]]; then
        spec=${args[-1]}
    else
        return
    fi

    case $spec in
        *SWARM*)
            local -a ids=()
            while IFS=$'\t' read -r line _; do
                [[ -n $line ]] && ids+=("$line")
            done < <("$prog" "${datadir[@]}" __complete swarms "$cur" 2>/dev/null)
            # A name typed completes to the id of the swarm it names: that
            # word is replaced (what `shoal pause` takes is the id).
            COMPREPLY=("${ids[@]}")
            ;;
        COMMAND)
            COMPREPLY=($(compgen -W "$("$prog" __complete commands 2>/dev/null)" -- "$cur"))
            ;;
        DIR | DIR...)
            _filedir -d
            ;;
        FILE)
            # A file inside the swarm named before it (shoal stream SWARM
            # FILE) is no local path: nothing to offer.
            [[ " ${args[*]} " == *" SWARM "* ]] || _filedir
            ;;
        *FILE* | *FOLDER* | *LINK*)
            _filedir
            ;;
    esac
    __ltrim_colon_completions "$cur"
} &&
    complete -F _shoal shoal

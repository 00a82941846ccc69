#!/bin/sh
# Downloads Keras's ImageNet ResNet50 weights, checks their md5 and converts them to vkrun model
# files. See weights/README.md.
#
#   weights/fetch_resnet50.sh [--top]
#
# notop (always): resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 -> weights/resnet50_notop.safetensors
# --top (also):   resnet50_weights_tf_dim_ordering_tf_kernels.h5       -> weights/resnet50.safetensors
#
# A file already in the weights folder is used as is (after the md5 check), so on a machine
# without network: download the .h5 elsewhere, put it in weights/, and rerun.
# Exit status: 0 done; 1 bad file (md5 mismatch) or conversion error; 2 download failed.
# Environment: VKRUN_WEIGHTS_DIR (default: this folder), VKRUN_WEIGHTS_URL (default: the
# keras-applications "resnet" release), PYTHON (default: /usr/bin/python3).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
dir=${VKRUN_WEIGHTS_DIR:-$here}
url=${VKRUN_WEIGHTS_URL:-https://github.com/keras-team/keras-applications/releases/download/resnet}
python=${PYTHON:-/usr/bin/python3}

NOTOP=resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
NOTOP_MD5=${VKRUN_TEST_NOTOP_MD5:-4d473c1dd8becc155b73f8504c6f6626}  # override: tests only
TOP=resnet50_weights_tf_dim_ordering_tf_kernels.h5
TOP_MD5=${VKRUN_TEST_TOP_MD5:-2cb95161c43110f7111970584f804107}

top=0
for a in "$@"; do
    case "$a" in
        --top) top=1 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fetch_resnet50.sh: unknown argument: $a (usage: fetch_resnet50.sh [--top])" >&2; exit 1 ;;
    esac
done

mkdir -p "$dir" || exit 1

md5_of() { md5sum "$1" | cut -d' ' -f1; }

download() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --connect-timeout 20 --retry 2 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -T 20 -O "$2" "$1"
    else
        echo "fetch_resnet50.sh: neither curl nor wget is installed" >&2
        return 1
    fi
}

# fetch NAME MD5: makes sure $dir/NAME exists with the right md5
fetch() {
    name=$1 want=$2 file=$dir/$1
    if [ -f "$file" ]; then
        got=$(md5_of "$file")
        if [ "$got" != "$want" ]; then
            echo "fetch_resnet50.sh: $file has md5 $got, expected $want (incomplete or wrong file):" >&2
            echo "  delete it and rerun, or put the right file there." >&2
            return 1
        fi
        echo "using $file (md5 ok)"
        return 0
    fi
    echo "downloading $url/$name"
    part=$file.part
    rm -f "$part"
    if ! download "$url/$name" "$part" || [ ! -s "$part" ]; then
        rm -f "$part"
        echo "" >&2
        echo "fetch_resnet50.sh: could not download $name (no network?)." >&2
        echo "  Download it on a machine with network access:" >&2
        echo "    $url/$name" >&2
        echo "  (md5 $want), copy it into $dir/ and rerun this script." >&2
        if [ $top = 1 ] && [ "$name" = "$NOTOP" ]; then
            echo "  --top also needs $url/$TOP (md5 $TOP_MD5)." >&2
        fi
        return 2
    fi
    got=$(md5_of "$part")
    if [ "$got" != "$want" ]; then
        rm -f "$part"
        echo "fetch_resnet50.sh: downloaded $name has md5 $got, expected $want; removed it" >&2
        return 1
    fi
    mv -f "$part" "$file" || return 1
}

fetch "$NOTOP" "$NOTOP_MD5" || exit $?
if [ $top = 1 ]; then
    fetch "$TOP" "$TOP_MD5" || exit $?
fi

"$python" "$root/tools/convert.py" "$dir/$NOTOP" -o "$dir/resnet50_notop.safetensors" --arch resnet50 || exit 1
if [ $top = 1 ]; then
    "$python" "$root/tools/convert.py" "$dir/$TOP" -o "$dir/resnet50.safetensors" --arch resnet50 --top || exit 1
fi
exit 0

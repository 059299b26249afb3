#!/bin/sh
# Raw images: a sparse file with data, holes and written zeros.
#   testdata/raw.sh DIR   (writes DIR/images.txt)
. "$(dirname "$0")/lib.sh"
dir=${1:?usage: raw.sh DIR}
cd "$dir"
rm -f sparse.raw
truncate -s 8M sparse.raw
qio -f raw -c 'write -P 0x11 0 64k' -c 'write -P 0x22 1M 4k' -c 'write -z 2M 64k' -c 'write -P 0x33 8388096 512' sparse.raw
printf 'x' > tiny.raw
echo "sparse.raw raw" > images.txt
echo "tiny.raw raw" >> images.txt

# Sourced by the attacker scripts: `training_photos DATA DIR` fills DIR with links to the attacker's
# training photos in the data folder DATA (BSDS500 train and val, Urban100, Sun-Hays80; never the
# 200 BSDS500 test photos, which are the victims).
training_photos() {
  local photos=$1/photos dir=$2
  mkdir -p "$dir"
  ln -sfn "$photos/bsds500/train" "$dir/bsds500-train"
  ln -sfn "$photos/bsds500/val" "$dir/bsds500-val"
  ln -sfn "$photos/urban100" "$dir/urban100"
  ln -sfn "$photos/sunhays80" "$dir/sunhays80"
}

# Sourced by the test-host scripts: install the Debian packages that are missing, quietly.
#   install_debian_packages <log function> <package>...
install_debian_packages() {
  local log_fn=$1 p missing=()
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    "$log_fn" "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

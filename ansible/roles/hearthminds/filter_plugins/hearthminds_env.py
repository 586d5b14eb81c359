# HearthMinds bootstrap: filters that write the suite's env file (/etc/hearthminds/hearthminds.env)
# from the role's variables, in the format the suite reads: KEY=value, 'single' or "double"
# quotes (backslash escapes in double quotes only; ${...} refused in double quotes), arrays as
# ["a", "b"].
from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _quoted(text, key):
    """A value the suite's parser reads back exactly."""
    if "'" not in text and "\n" not in text and "\r" not in text:
        return "'%s'" % text
    if "${" in text:
        # (the value is never shown: it may be a password)
        raise AnsibleFilterError("hearthminds_env: the value of %s has both a quote (') or a line break and "
                                 "'${': the env file cannot hold it; change it" % key)
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")
               .replace("\t", "\\t"))
    return '"%s"' % escaped


def hearthminds_env_value(value, key=""):
    """One value of the env file, quoted; a list becomes an array ["a", "b"]."""
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            text = _scalar(item)
            if '"' in text or "\\" in text or "\n" in text:
                raise AnsibleFilterError("hearthminds_env: an element of %s holds a quote, a backslash or a line "
                                         "break" % key)
            items.append('"%s"' % text)
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        raise AnsibleFilterError("hearthminds_env: %s is a mapping; the suite's keys take a value or a list" % key)
    return _quoted(_scalar(value), key)


def hearthminds_env_keys(mapping, what="hearthminds_config", passwords=False):
    """The keys of a mapping, sorted, each checked: a key name, and a password key only among the
    passwords (so that a password is never written from a variable the role logs)."""
    if mapping is None:
        return []
    if not isinstance(mapping, dict):
        raise AnsibleFilterError("%s must be a mapping of the suite's keys (KEY: value)" % what)
    keys = sorted(str(k) for k in mapping)
    for key in keys:
        if not KEY.match(key):
            raise AnsibleFilterError("%s: %r is not a key name (letters, digits and _)" % (what, key))
        is_password = key.upper().endswith("_PASSWORD")
        if is_password and not passwords:
            raise AnsibleFilterError("%s: %s is a password: put it in hearthminds_passwords (from Ansible Vault), "
                                     "which the role never logs" % (what, key))
        if passwords and not is_password:
            raise AnsibleFilterError("%s: %s is not a password key (NAME_PASSWORD): put it in hearthminds_config"
                                     % (what, key))
    return keys


class FilterModule(object):
    def filters(self):
        return {
            "hearthminds_env_value": hearthminds_env_value,
            "hearthminds_env_keys": hearthminds_env_keys,
        }

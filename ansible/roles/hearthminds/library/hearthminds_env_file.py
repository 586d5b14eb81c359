#!/usr/bin/python3
# HearthMinds bootstrap: the Ansible module that writes the host's configuration file
# (/etc/hearthminds/hearthminds.env, which may hold passwords): root's, mode 0600 from its creation,
# replaced whole and atomically, never shown.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: hearthminds_env_file
short_description: Write the HearthMinds env file (passwords in it) root's, 0600 from its creation, atomically
description:
  - Writes I(content) to I(path) when the file differs (content, owner root:root, mode 0600, a
    single link), as a new file made with mode 0600 (never wider, whatever the umask), synced,
    then renamed over the old one. A link at I(path) is replaced, never followed.
  - The directory is reached from C(/) without following a link; it and every directory above it
    must be root's and not writable by group or others (else the module fails naming it), so that
    no other account can plant a link there or read the file before its mode is set. A missing
    directory is made, root's, mode 0755.
  - I(content) is never returned, logged or shown in a diff (the role's task is also C(no_log)).
  - A success returns C(env_file_ok=true); a failure's message names paths and reasons only.
options:
  path:
    description: The file.
    type: path
    default: /etc/hearthminds/hearthminds.env
  content:
    description: The whole file.
    type: str
    required: true
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.hearthminds_safe import UnsafePath, open_root_dir, same_file, write_file

MODE = 0o600


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/hearthminds/hearthminds.env"),
            content=dict(type="str", required=True, no_log=True),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    content = module.params["content"]
    if not content.endswith("\n"):
        content += "\n"
    data = content.encode("utf-8")
    directory, name = os.path.split(path)
    if not name:
        module.fail_json(msg="%s: not a file path" % path)
    created = []
    try:
        try:
            dir_fd = open_root_dir(directory, create_mode=None)
        except FileNotFoundError:
            if module.check_mode:
                module.exit_json(changed=True, path=path, env_file_ok=True,
                                 msg="%s would be made (its directory is not there yet)" % path)
            dir_fd = open_root_dir(directory, create_mode=0o755, created=created)
    except UnsafePath as error:
        module.fail_json(msg="%s: %s" % (path, error))
    except OSError as error:
        module.fail_json(msg="%s: cannot open its directory: %s" % (path, error.strerror))
    try:
        if same_file(dir_fd, name, data, MODE):
            module.exit_json(changed=bool(created), path=path, created=created, env_file_ok=True)
        if module.check_mode:
            module.exit_json(changed=True, path=path, env_file_ok=True, msg="%s would be replaced" % path)
        write_file(dir_fd, name, data, MODE)
    except OSError as error:
        module.fail_json(msg="%s: cannot write it: %s" % (path, error.strerror))
    finally:
        os.close(dir_fd)
    module.exit_json(changed=True, path=path, created=created, mode="0600", env_file_ok=True)


if __name__ == "__main__":
    main()

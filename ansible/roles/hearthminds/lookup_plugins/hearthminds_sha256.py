# HearthMinds bootstrap: the SHA-256 of a file on the controller (the release tarball), computed in
# the controller's own process: the role compares it with the release the host has unpacked.
from __future__ import annotations

import hashlib

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: hearthminds_sha256
short_description: SHA-256 of a file on the controller
description: The hex SHA-256 of each file named, found as the copy module finds its src (absolute,
  or relative to the role's or the playbook's files/ directories and the playbook's directory).
options:
  _terms:
    description: Paths of files on the controller.
    required: true
"""


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        sums = []
        for term in terms:
            path = self.find_file_in_search_path(variables, "files", str(term), ignore_missing=True)
            if not path:
                raise AnsibleLookupError("no release tarball at %s on the controller (make dist)" % term)
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)
            except OSError as error:
                raise AnsibleLookupError("cannot read the release tarball %s: %s" % (path, error))
            sums.append(digest.hexdigest())
        return sums

"""Print template.yaml as CloudFormation will see it: the SAM transform, by the translator the SAM CLI ships.

Runs with the SAM CLI's interpreter (.venv-sam/bin/python):
`python sam_transform.py TEMPLATE [PARAMETERS_JSON [CODE_SUFFIXES_JSON]]`.
As `sam deploy` does, the local CodeUri/ContentUri become S3 locations first (the transform wants those). The
template's managed policies are given by ARN only, so no policy-name lookup in IAM is needed.
"""

from __future__ import annotations

import json
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

CODE_PROPERTY = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class NoManagedPolicyNames:
    def load(self) -> dict[str, str]:
        return {}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    parameters = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    # The S3 keys' suffix per resource, as a new upload of its code would change it (`sam deploy` names them by hash).
    suffixes = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    for name, resource in template["Resources"].items():
        code = CODE_PROPERTY.get(resource["Type"])
        if code:
            suffix = suffixes.get(name, "")
            resource["Properties"][code] = f"s3://deployment-bucket/{name}{suffix}.zip"
    json.dump(transform(template, parameters, NoManagedPolicyNames()), sys.stdout)


if __name__ == "__main__":
    main()

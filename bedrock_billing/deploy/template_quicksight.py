"""``deploy --quicksight``: a QuickSight data source over the stack's Athena workgroup and a
data set over the usage-log Glue table, owned by one QuickSight user or group, so an
operator who uses QuickSight starts from the product's data, not from a crawler. Pure.

Off by default: QuickSight is billed per user (docs/metrics.md, "QuickSight"). The account
must already be subscribed to QuickSight, and QuickSight's service role must be allowed to
read the log bucket (QuickSight's own security settings), as for any Athena data source.
"""

from __future__ import annotations

from bedrock_billing.core.logschema import FIELDS

from .config import DeployConfig

# Athena (Glue) type -> QuickSight InputColumn type
QUICKSIGHT_TYPES = {"string": "STRING", "bigint": "INTEGER", "int": "INTEGER", "boolean": "BOOLEAN"}

DATA_SOURCE_ACTIONS = [
    "quicksight:DeleteDataSource",
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
    "quicksight:UpdateDataSource",
    "quicksight:UpdateDataSourcePermissions",
]
DATA_SET_ACTIONS = [
    "quicksight:DeleteDataSet",
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:DescribeIngestion",
    "quicksight:ListIngestions",
    "quicksight:PassDataSet",
    "quicksight:UpdateDataSet",
    "quicksight:UpdateDataSetPermissions",
]


def input_columns() -> list[dict[str, str]]:
    columns = [{"Name": f.name, "Type": QUICKSIGHT_TYPES[f.athena_type]} for f in FIELDS]
    return columns + [{"Name": "dt", "Type": "STRING"}]  # the partition (UTC day)


def quicksight_resources(cfg: DeployConfig) -> dict[str, dict]:
    if not cfg.quicksight:
        return {}
    account = {"Ref": "AWS::AccountId"}
    return {
        "QuickSightDataSource": {
            "Type": "AWS::QuickSight::DataSource",
            "Properties": {
                "AwsAccountId": account,
                "DataSourceId": f"{cfg.base}-usage",
                "Name": f"bedrock-billing {cfg.stage} usage (Athena)",
                "Type": "ATHENA",
                "DataSourceParameters": {"AthenaParameters": {"WorkGroup": cfg.workgroup}},
                "Permissions": [
                    {"Principal": cfg.quicksight_principal, "Actions": DATA_SOURCE_ACTIONS}
                ],
            },
        },
        "QuickSightDataSet": {
            "Type": "AWS::QuickSight::DataSet",
            "Properties": {
                "AwsAccountId": account,
                "DataSetId": f"{cfg.base}-usage-log",
                "Name": f"bedrock-billing {cfg.stage} usage log",
                # Queries go to Athena as the dashboards ask: no SPICE capacity to buy.
                "ImportMode": "DIRECT_QUERY",
                "PhysicalTableMap": {
                    "usagelog": {
                        "RelationalTable": {
                            "DataSourceArn": {"Fn::GetAtt": ["QuickSightDataSource", "Arn"]},
                            "Catalog": "AwsDataCatalog",
                            "Schema": cfg.glue_database,
                            "Name": cfg.glue_table,
                            "InputColumns": input_columns(),
                        }
                    }
                },
                "Permissions": [
                    {"Principal": cfg.quicksight_principal, "Actions": DATA_SET_ACTIONS}
                ],
            },
        },
    }

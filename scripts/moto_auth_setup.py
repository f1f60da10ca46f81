"""Turns a fresh moto_server into a signature-checking one: creates an IAM user allowed S3 and
DynamoDB, then sets INITIAL_NO_AUTH_ACTION_COUNT to 0 so every later request is verified.
Prints the user's access key id and secret on one line."""
import json
import sys
import urllib.request

import boto3

endpoint = sys.argv[1]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="vecgo-test")
iam.put_user_policy(UserName="vecgo-test", PolicyName="vecgo-test", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "dynamodb:*"], "Resource": "*"}]}))
key = iam.create_access_key(UserName="vecgo-test")["AccessKey"]
request = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
urllib.request.urlopen(request).read()
print(key["AccessKeyId"], key["SecretAccessKey"])

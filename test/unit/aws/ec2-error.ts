import { EC2ServiceException } from '@aws-sdk/client-ec2';

/** An error shaped as the SDK throws it for an EC2 Query API error response. */
export function ec2Error(code: string, status = 400, message = `${code} happened`, requestId = `req-${code}`): EC2ServiceException {
  return new EC2ServiceException({
    name: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId },
    message,
  });
}

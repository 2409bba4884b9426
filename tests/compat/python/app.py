"""A FastAPI backend as Better-Auth deployments run it, in two variants.

* ``jwt_app``: verifies the ``Authorization: Bearer <jwt>`` itself with PyJWT's
  ``PyJWKClient`` against the auth server's JWKS, exactly as a seed deployment does.
* ``proxied_app``: sits behind ``latchkey-api`` in reverse-proxy mode (``LATCHKEY_UPSTREAM``)
  and only reads the ``X-Auth-User-*`` headers it sets: no JWT code at all.

Configuration (env): ``AUTH_URL`` (the auth server's public URL = JWT issuer and audience),
``JWT_ALGORITHMS`` (comma list, default ``EdDSA``).
"""

import os

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException

AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:3000").rstrip("/")
ALGORITHMS = os.environ.get("JWT_ALGORITHMS", "EdDSA").split(",")

# --- variant 1: verify the JWT in the backend -------------------------------------------------

jwks_client = jwt.PyJWKClient(f"{AUTH_URL}/api/auth/jwks", cache_keys=True)


def current_user(authorization: str = Header(default="")) -> dict:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status_code=401, detail="missing bearer token")
    try:
        signing_key = jwks_client.get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            signing_key,
            algorithms=ALGORITHMS,
            audience=AUTH_URL,
            issuer=AUTH_URL,
        )
    except jwt.PyJWTError as e:
        raise HTTPException(status_code=401, detail=f"invalid token: {e}") from e


jwt_app = FastAPI()


@jwt_app.get("/me")
def me(user: dict = Depends(current_user)) -> dict:
    return {"id": user["sub"], "email": user.get("email"), "name": user.get("name")}


# --- variant 2: behind latchkey-api as a reverse proxy ----------------------------------------

proxied_app = FastAPI()


@proxied_app.get("/me")
def proxied_me(
    x_auth_user_id: str = Header(),
    x_auth_user_email: str | None = Header(default=None),
    x_auth_user_name: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> dict:
    return {
        "id": x_auth_user_id,
        "email": x_auth_user_email,
        "name": x_auth_user_name,
        # Only for the test: latchkey-api passes the bearer token on unchanged.
        "sawAuthorization": authorization is not None,
    }

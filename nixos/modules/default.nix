# Both services; each is off until enabled.
{
  imports = [
    ./auth.nix
    ./api.nix
  ];
}

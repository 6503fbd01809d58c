using System.Text;
using System.Text.Json;
using VmmSharp.Cli.Api;

namespace VmmSharp.Fuzz.Targets.Api;

/// <summary>
/// The API's request parsing and pre-boot validation (not Kestrel): byte 0 picks the endpoint, the rest is its body,
/// parsed into Firecracker's model and applied to a fresh <see cref="VmConfiguration"/>. The only refusal is
/// <see cref="ApiFault"/> (a 400 or 413 with a message); anything else escaping is a crash. An accepted request must
/// leave a configuration that <c>GET /vm/config</c> can write and a config file can read back.
/// </summary>
internal sealed class ApiRequestTarget : IFuzzTarget
{
    private static readonly string[] Endpoints =
        ["boot-source", "machine-config", "machine-config-patch", "drives", "network-interfaces", "vsock", "entropy", "actions", "vm", "snapshot-create", "snapshot-load", "config-file"];

    public string Name => "api-request";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        ReadOnlySpan<byte> body = input[1..];
        var config = new VmConfiguration();
        try
        {
            Apply(Endpoints[input[0] % Endpoints.Length], body, config);
        }
        catch (ApiFault f)
        {
            FuzzCheckException.Check(f.Message.Length > 0 && f.Status is ApiFault.BadRequest or ApiFault.PayloadTooLarge, $"a fault without a message or with status {f.Status}");
            return;
        }
        byte[] exported = JsonSerializer.SerializeToUtf8Bytes(config.Export(null, null), ApiJson.Api.FullVmConfiguration);
        try
        {
            _ = ApiRequest.Parse(exported, ApiJson.Api.FullVmConfiguration, ConfigFile.MaxFileSize);
        }
        catch (ApiFault f)
        {
            throw new FuzzCheckException($"GET /vm/config wrote what a config file cannot read ({f.Message}): {Encoding.UTF8.GetString(exported)}");
        }
        if (config.BootSource is not null)
        {
            try
            {
                _ = config.ToMachineOptions();
            }
            catch (ApiFault f)
            {
                throw new FuzzCheckException($"an accepted configuration could not be turned into machine options: {f.Message}");
            }
        }
    }

    private static void Apply(string endpoint, ReadOnlySpan<byte> body, VmConfiguration config)
    {
        ApiJson json = ApiJson.Api;
        switch (endpoint)
        {
            case "boot-source":
                config.SetBootSource(ApiRequest.Parse(body, json.BootSource));
                break;
            case "machine-config":
                config.SetMachine(ApiRequest.Parse(body, json.MachineConfiguration));
                break;
            case "machine-config-patch":
                config.PatchMachine(ApiRequest.Parse(body, json.MachineConfigurationPatch));
                break;
            case "drives":
                Drive d = ApiRequest.Parse(body, json.Drive);
                config.SetDrive(d.DriveId, d);
                break;
            case "network-interfaces":
                NetworkInterface n = ApiRequest.Parse(body, json.NetworkInterface);
                config.SetNetworkInterface(n.IfaceId, n);
                break;
            case "vsock":
                config.SetVsock(ApiRequest.Parse(body, json.Vsock));
                break;
            case "entropy":
                config.SetEntropy(ApiRequest.Parse(body, json.EntropyDevice));
                break;
            case "actions":
                _ = ApiRequest.Parse(body, json.InstanceActionInfo);
                break;
            case "vm":
                _ = ApiRequest.Parse(body, json.VmState);
                break;
            case "snapshot-create":
                _ = ApiRequest.Parse(body, json.SnapshotCreateParams);
                break;
            case "snapshot-load":
                _ = ApiRequest.Parse(body, json.SnapshotLoadParams);
                break;
            default:
                FullVmConfiguration file = ApiRequest.Parse(body, json.FullVmConfiguration, ConfigFile.MaxFileSize);
                foreach (Drive drive in file.Drives ?? [])
                {
                    config.SetDrive(drive.DriveId, drive);
                }
                foreach (NetworkInterface net in file.NetworkInterfaces ?? [])
                {
                    config.SetNetworkInterface(net.IfaceId, net);
                }
                if (file.MachineConfig is { } machine)
                {
                    config.SetMachine(machine);
                }
                break;
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        yield return ("boot-source.json", Seed("boot-source", """{"kernel_image_path": "/etc/hostname", "boot_args": "console=ttyS0 reboot=k"}"""));
        yield return ("machine-config.json", Seed("machine-config", """{"vcpu_count": 2, "mem_size_mib": 256, "smt": false, "track_dirty_pages": true}"""));
        yield return ("machine-config-patch.json", Seed("machine-config-patch", """{"mem_size_mib": 64}"""));
        yield return ("drive.json", Seed("drives", """{"drive_id": "rootfs", "path_on_host": "/etc/hostname", "is_root_device": true, "is_read_only": true, "partuuid": "0eaa91a0-01"}"""));
        yield return ("net.json", Seed("network-interfaces", """{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}"""));
        yield return ("vsock.json", Seed("vsock", """{"guest_cid": 3, "uds_path": "/tmp/v.sock"}"""));
        yield return ("entropy.json", Seed("entropy", "{}"));
        yield return ("actions.json", Seed("actions", """{"action_type": "InstanceStart"}"""));
        yield return ("vm.json", Seed("vm", """{"state": "Paused"}"""));
        yield return ("snapshot-create.json", Seed("snapshot-create", """{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m", "snapshot_type": "Full"}"""));
        yield return ("snapshot-load.json", Seed("snapshot-load", """{"snapshot_path": "/tmp/s", "mem_backend": {"backend_type": "File", "backend_path": "/tmp/m"}, "resume_vm": true}"""));
        yield return ("config-file.json", Seed("config-file", """{"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}, "drives": [{"drive_id": "a", "path_on_host": "/etc/hostname", "is_root_device": false}], "network-interfaces": [{"iface_id": "n", "host_dev_name": "tap1"}]}"""));
    }

    private static byte[] Seed(string endpoint, string json) => [(byte)Array.IndexOf(Endpoints, endpoint), .. Encoding.UTF8.GetBytes(json)];
}

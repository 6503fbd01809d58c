using VmmSharp.Devices.Virtio.Net;
using VmmSharp.Machine;

namespace VmmSharp.Tests.Machine;

/// <summary>
/// Linux's own virtio-net driver (the small test kernel, no user space) on our device and a TAP in a network
/// namespace of the test's own: <c>ip=</c> configures it, it answers the host's ping, netconsole's UDP reaches a host
/// socket, and it negotiated the offloads and mergeable buffers. One boot (<see cref="LinuxNetworkBoot"/>) serves them all.
/// </summary>
public sealed class VirtioLinuxNetTests(LinuxNetworkBoot boot) : IClassFixture<LinuxNetworkBoot>
{
    [Fact]
    public void Linux_configures_eth0_on_virtio_net_through_ip_on_the_command_line()
    {
        LinuxNetworkBoot.Outcome o = boot.Get();
        TestContext.Current.TestOutputHelper?.WriteLine($"IP-Config: Complete after {o.ConfiguredAfter?.TotalSeconds:0.0} s of the run");

        Assert.True(o.Run.Result.Outcome == MachineOutcome.Stopped, $"the run did not end as the test asked\n{o.Run.Describe()}");
        o.Run.AssertLineStartsWith("IP-Config: Complete:");
        o.Run.AssertLineStartsWith($"     device=eth0, hwaddr=52:54:00:12:34:56, ipaddr={LinuxNetworkBoot.GuestIp}, mask=255.255.255.0, gw=10.0.2.1");
    }

    [Fact]
    public void Linux_answers_the_hosts_ping_through_the_tap()
    {
        LinuxNetworkBoot.Outcome o = boot.Get();

        Assert.True(o.Replies.ContainsKey(56), $"no echo reply to a 56-byte ping from the host\n{o.Run.Describe()}");
        Assert.True(o.FramesReceived > 0 && o.FramesSent > 0, $"frames: {o.FramesReceived} received, {o.FramesSent} sent");
    }

    [Fact]
    public void Linux_answers_a_4000_byte_ping_fragmented_both_ways()
    {
        LinuxNetworkBoot.Outcome o = boot.Get();

        Assert.True(o.Replies.ContainsKey(LinuxNetworkBoot.LargePing), $"no echo reply with the same 4000 bytes\n{o.Run.Describe()}");
    }

    [Fact]
    public void Netconsole_sends_the_kernels_log_lines_to_a_host_socket()
    {
        LinuxNetworkBoot.Outcome o = boot.Get();

        string text = o.NetconsoleText;
        Assert.Contains("netconsole: network logging started", text, StringComparison.Ordinal);
        Assert.Contains("IP-Config: Complete", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Linux_negotiates_mergeable_buffers_link_status_and_the_offloads_and_the_tap_is_told()
    {
        LinuxNetworkBoot.Outcome o = boot.Get();

        ulong wanted = VirtioNetFeatures.Mac | VirtioNetFeatures.Status | VirtioNetFeatures.MrgRxBuf | VirtioNetFeatures.Csum
            | VirtioNetFeatures.GuestCsum | VirtioNetFeatures.HostTso4 | VirtioNetFeatures.HostTso6 | VirtioNetFeatures.GuestTso4
            | VirtioNetFeatures.GuestTso6;
        Assert.True((o.DriverFeatures & wanted) == wanted, $"Linux accepted 0x{o.DriverFeatures:x}, lacking 0x{wanted & ~o.DriverFeatures:x}");
        Assert.Equal(7u, o.TapOffloads); // TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6
    }
}

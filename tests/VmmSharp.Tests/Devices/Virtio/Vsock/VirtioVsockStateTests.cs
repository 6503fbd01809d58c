using System.Net.Sockets;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Vsock;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio.Vsock;

/// <summary>virtio-vsock restored from a snapshot: no connections survive, and the guest hears so through a transport reset.</summary>
public sealed class VirtioVsockStateTests : IDisposable
{
    private const ulong EvDesc = 0x7000, EvAvail = 0x8000, EvUsed = 0x9000, EvBuffer = 0x30_0000;

    private readonly string _dir = Directory.CreateTempSubdirectory("vmmsharp-vsockstate").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_restored_device_sends_the_guest_a_transport_reset_and_has_no_connections()
    {
        using var guest = new VsockTestGuest(Path.Combine(_dir, "a.sock"));
        var events = new TestRing(guest.Memory, guest.Device.Queues[2], EvDesc, EvAvail, EvUsed);
        events.SetDescriptor(0, EvBuffer, 4, D.FlagWrite);
        guest.Memory.Write(EvBuffer, 0xffff_ffffu);
        events.Offer(0);
        guest.Transport.OnNotifyEvent();
        guest.PostRx(4);
        using var peer = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        peer.Connect(new UnixDomainSocketEndPoint(guest.Device.SocketPath));
        Assert.True(SpinWait.SpinUntil(() => { guest.Device.OnBackendReadable(); return guest.Device.ConnectionCount == 1; }, TimeSpan.FromSeconds(10)));
        Assert.Equal(0, events.UsedIdx); // no event before the restore

        using var fresh = new VirtioVsock(VsockTestGuest.Cid, Path.Combine(_dir, "b.sock"));
        var irq = new RecordingIrqLine();
        using var transport = new VirtioMmioTransport(fresh, guest.Memory, 0xd000_0000, irq);
        StateRoundTrip.Copy(guest.Transport, transport);

        Assert.Equal(0, fresh.ConnectionCount);
        Assert.Equal(1, events.UsedIdx);
        Assert.Equal((0u, 4u), events.UsedElement(0));
        Assert.Equal(0u, guest.Memory.Read<uint>(EvBuffer)); // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
        Assert.True(irq.Level);
    }

    [Fact]
    public void A_device_with_another_cid_refuses_the_state()
    {
        using var guest = new VsockTestGuest(Path.Combine(_dir, "a.sock"));
        using var other = new VirtioVsock(VsockTestGuest.Cid + 1, Path.Combine(_dir, "b.sock"));
        using var transport = new VirtioMmioTransport(other, guest.Memory, 0xd000_0000, new RecordingIrqLine());
        Assert.Contains("guest cid 3", StateRoundTrip.Refused(transport, StateRoundTrip.Save(guest.Transport)), StringComparison.Ordinal);
    }
}

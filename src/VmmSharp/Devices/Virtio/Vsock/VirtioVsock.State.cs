using System.Buffers.Binary;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.State;

namespace VmmSharp.Devices.Virtio.Vsock;

/// <content>
/// The device's state in a snapshot, as Firecracker keeps it: the guest's cid and the queues, and no connections.
/// Connections are host sockets, which neither a new process nor the same one after a reset has any more, so a
/// restored device starts with none and tells the guest with <c>VIRTIO_VSOCK_EVENT_TRANSPORT_RESET</c> on the event
/// queue: the guest's driver drops its sockets and its listeners stay.
/// </content>
public sealed partial class VirtioVsock
{
    private const int EventQueue = 2;
    private const uint EventTransportReset = 0;

    private readonly DescriptorChain _eventChain = new(EventQueueSize);
    private bool _transportResetPending;
    private bool _backendWhilePaused;

    /// <summary>How many transport-reset events the device gave the guest (one per restore of an active device).</summary>
    public long TransportResets { get; private set; }

    /// <inheritdoc/>
    protected override void SaveDeviceState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteUInt64(GuestCid);
    }

    /// <inheritdoc/>
    protected override void RestoreDeviceState(ref StateReader reader, ushort version)
    {
        ulong cid = reader.ReadUInt64("guest cid");
        if (cid != GuestCid)
        {
            throw reader.Invalid("guest cid", cid, $"differs from this device's {GuestCid}");
        }
    }

    /// <inheritdoc/>
    protected override void OnRestored()
    {
        _transportResetPending = true;
        SendTransportReset();
    }

    /// <inheritdoc/>
    protected override void OnResume()
    {
        bool pending;
        lock (Sync)
        {
            pending = _backendWhilePaused;
            _backendWhilePaused = false;
        }
        if (pending)
        {
            OnBackendReadable();
        }
    }

    /// <summary>Puts the transport-reset event in the guest's next event buffer; waits for one if none is posted.</summary>
    private void SendTransportReset()
    {
        Virtqueue q = Queues[EventQueue];
        if (NeedsReset || !q.IsActive)
        {
            return;
        }
        QueuePop pop = q.TryPop(_eventChain);
        if (pop == QueuePop.Empty)
        {
            q.ArmNotification();
            return; // sent when the guest posts an event buffer (OnNotify)
        }
        if (pop == QueuePop.Error)
        {
            Fail($"queue {EventQueue}: {q.Error}");
            return;
        }
        Span<byte> ev = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(ev, EventTransportReset);
        if (!CopyToChain(_eventChain.Writable, ev))
        {
            Fail($"event buffer at descriptor {_eventChain.Head} cannot hold the 4-byte event");
            return;
        }
        if (!q.TryPushUsed(_eventChain.Head, 4))
        {
            Fail($"queue {EventQueue}: {q.Error}");
            return;
        }
        _transportResetPending = false;
        TransportResets++;
        if (q.NeedsInterrupt())
        {
            Interrupt.SignalUsedBuffers();
        }
    }
}

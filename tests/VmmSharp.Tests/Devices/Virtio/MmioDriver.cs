using System.Buffers.Binary;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Mmio;
using R = VmmSharp.Devices.Virtio.Mmio.VirtioMmioRegisters;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>A guest driver's register accesses to a virtio-mmio window, in the order virtio 1.2 §3.1 and §4.2.3 give.</summary>
internal sealed class MmioDriver(VirtioMmioTransport transport)
{
    public uint Read(uint offset)
    {
        Span<byte> b = stackalloc byte[4];
        transport.Read(offset, b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public void Write(uint offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        transport.Write(offset, b);
    }

    public ulong DeviceFeatures()
    {
        Write(R.DeviceFeaturesSel, 0);
        uint low = Read(R.DeviceFeatures);
        Write(R.DeviceFeaturesSel, 1);
        return low | ((ulong)Read(R.DeviceFeatures) << 32);
    }

    /// <summary>Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the device kept FEATURES_OK.</summary>
    public bool Negotiate(ulong features)
    {
        Write(R.Status, 0);
        Write(R.Status, (uint)VirtioStatus.Acknowledge);
        Write(R.Status, (uint)(VirtioStatus.Acknowledge | VirtioStatus.Driver));
        Write(R.DriverFeaturesSel, 0);
        Write(R.DriverFeatures, (uint)features);
        Write(R.DriverFeaturesSel, 1);
        Write(R.DriverFeatures, (uint)(features >> 32));
        Write(R.Status, (uint)(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk));
        return (Read(R.Status) & (uint)VirtioStatus.FeaturesOk) != 0;
    }

    public void SetUpQueue(uint index, uint size, ulong desc, ulong avail, ulong used)
    {
        Write(R.QueueSel, index);
        Write(R.QueueNum, size);
        Write(R.QueueDescLow, (uint)desc);
        Write(R.QueueDescHigh, (uint)(desc >> 32));
        Write(R.QueueDriverLow, (uint)avail);
        Write(R.QueueDriverHigh, (uint)(avail >> 32));
        Write(R.QueueDeviceLow, (uint)used);
        Write(R.QueueDeviceHigh, (uint)(used >> 32));
        Write(R.QueueReady, 1);
    }

    public void DriverOk()
        => Write(R.Status, (uint)(VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk));

    /// <summary>Negotiates <paramref name="features"/>, sets queue 0 on <see cref="TestRing"/>'s addresses, DRIVER_OK.</summary>
    public void Start(ulong features = VirtioFeatures.Common, uint queueSize = 16)
    {
        Assert.True(Negotiate(features));
        SetUpQueue(0, queueSize, TestRing.Desc, TestRing.Avail, TestRing.Used);
        DriverOk();
    }
}

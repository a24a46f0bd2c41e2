import NIOCore

/// The upper layer's timers on one connection, on its event loop:
/// - ARTIM (PS3.8 9.1.5): the first PDU must arrive within `artim` of the connection;
/// - idle: afterwards, a silent peer is aborted after `idle`;
/// - lifetime: no association lasts longer than `lifetime`.
/// On expiry the peer gets an A-ABORT and the connection closes; the association's task sees
/// its inbound stream end.
final class AssociationTimeouts: ChannelDuplexHandler {
    typealias InboundIn = PDU
    typealias InboundOut = PDU
    typealias OutboundIn = PDU
    typealias OutboundOut = PDU

    let artim: TimeAmount
    let idle: TimeAmount
    let lifetime: TimeAmount
    private var seenPDU = false
    private var readTimer: Scheduled<Void>?
    private var lifetimeTimer: Scheduled<Void>?

    init(artim: TimeAmount, idle: TimeAmount, lifetime: TimeAmount) {
        self.artim = artim
        self.idle = idle
        self.lifetime = lifetime
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context, after: artim)
        lifetimeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: lifetime) { [self] in
            expire(context: context)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        seenPDU = true
        arm(context: context, after: idle)
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        readTimer?.cancel()
        lifetimeTimer?.cancel()
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
    }

    private func arm(context: ChannelHandlerContext, after delay: TimeAmount) {
        readTimer?.cancel()
        readTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            expire(context: context)
        }
    }

    private func expire(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(.abort(.notSpecified))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
